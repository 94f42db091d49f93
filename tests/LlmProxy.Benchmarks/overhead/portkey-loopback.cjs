// Preloaded into the Portkey gateway (node --require) by the overhead benchmark. Portkey's node server listens on
// every interface and has no option to change that; the benchmark binds only loopback, so a listen() call that
// names no host is pointed at 127.0.0.1 here.
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    if (typeof args[1] !== 'string') {
      args.splice(1, 0, '127.0.0.1');
    }
  } else if (args[0] && typeof args[0] === 'object' && !Array.isArray(args[0]) && args[0].path === undefined && !args[0].host) {
    args[0] = { ...args[0], host: '127.0.0.1' };
  }
  return listen.apply(this, args);
};
