using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Connections;

namespace LlmProxy.Simulator.Faults;

/// <summary>
/// Kestrel's socket transport with an off switch for the <see cref="SimulatorFaultKind.Refuse"/> fault: while the fault is
/// armed the listening sockets are closed (connecting gets "connection refused", as from a crashed or stopped server) and
/// open connections are dropped; clearing the fault listens again on the same address. Listeners on
/// <paramref name="controlPorts"/> are never closed, so an out-of-process test can still clear the fault.
/// </summary>
internal sealed class RefusingListenerFactory(IConnectionListenerFactory sockets, SimulatorFaults faults, IReadOnlySet<int> controlPorts)
    : IConnectionListenerFactory
{
    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var listener = await sockets.BindAsync(endpoint, cancellationToken);
        if (endpoint is IPEndPoint { Port: > 0 } ip && controlPorts.Contains(ip.Port))
        {
            return listener;
        }
        return new Listener(sockets, listener, faults);
    }

    private sealed class Listener : IConnectionListener
    {
        private readonly Lock _gate = new();
        private readonly IConnectionListenerFactory _sockets;
        private readonly SimulatorFaults _faults;
        private readonly ConcurrentDictionary<ConnectionContext, byte> _open = new();
        private IConnectionListener? _inner;
        private TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private bool _unbound;

        public Listener(IConnectionListenerFactory sockets, IConnectionListener inner, SimulatorFaults faults)
        {
            _sockets = sockets;
            _inner = inner;
            // The address actually bound (port 0 resolved), so that listening again keeps the port clients know.
            EndPoint = inner.EndPoint;
            _faults = faults;
            faults.Changed += OnFaultsChanged;
            OnFaultsChanged();
        }

        public EndPoint EndPoint { get; }

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                IConnectionListener? inner;
                Task listening;
                lock (_gate)
                {
                    if (_unbound)
                    {
                        return null;
                    }
                    inner = _inner;
                    listening = _listening.Task;
                }
                if (inner is null)
                {
                    // Refusing: Kestrel must not see null (it would stop accepting for good), so wait for the fault to clear.
                    await listening.WaitAsync(cancellationToken);
                    continue;
                }
                var connection = await inner.AcceptAsync(cancellationToken);
                if (connection is not null)
                {
                    _open[connection] = 0;
                    connection.ConnectionClosed.Register(() => _open.TryRemove(connection, out _));
                    return connection;
                }
                // The socket was closed: by the fault (loop and wait) or because the server is stopping (the lock above returns null).
            }
        }

        private void OnFaultsChanged()
        {
            var refuse = _faults.Current?.Kind == SimulatorFaultKind.Refuse;
            // Under the lock as a whole, so that a clear racing a set cannot bind again before the old socket is closed.
            // The socket transport binds and unbinds synchronously.
            lock (_gate)
            {
                if (_unbound || refuse == (_inner is null))
                {
                    return;
                }
                if (refuse)
                {
                    _inner!.UnbindAsync().AsTask().GetAwaiter().GetResult();
                    _inner.DisposeAsync().AsTask().GetAwaiter().GetResult();
                    _inner = null;
                    _listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    foreach (var connection in _open.Keys)
                    {
                        connection.Abort(new ConnectionAbortedException("The simulator is refusing connections."));
                    }
                }
                else
                {
                    _inner = _sockets.BindAsync(EndPoint).AsTask().GetAwaiter().GetResult();
                    _listening.TrySetResult();
                }
            }
        }

        public async ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            IConnectionListener? inner;
            lock (_gate)
            {
                _unbound = true;
                _faults.Changed -= OnFaultsChanged;
                inner = _inner;
                _listening.TrySetResult();
            }
            if (inner is not null)
            {
                await inner.UnbindAsync(cancellationToken);
            }
        }

        public async ValueTask DisposeAsync()
        {
            IConnectionListener? inner;
            lock (_gate)
            {
                _unbound = true;
                _faults.Changed -= OnFaultsChanged;
                inner = _inner;
                _inner = null;
                _listening.TrySetResult();
            }
            if (inner is not null)
            {
                await inner.DisposeAsync();
            }
        }
    }
}
