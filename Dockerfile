# syntax=docker/dockerfile:1
# Multi-stage build: the SDK image builds and publishes, the ASP.NET runtime image runs as a non-root user.
# The image carries production defaults only: config/production-defaults.json becomes /app/appsettings.json, with
# no tenant, no model route and the simulator off. The repository's root appsettings.json (the quick start's demo
# tenant, whose key is published in the README, and its simulator routes) is never copied: configuration layers only
# add keys, so an operator's file could not remove that tenant again. Mount the operator's configuration (tenants,
# models) as /app/config/llmproxy.json or name it in LLMPROXY_CONFIG; without one the gateway refuses to start.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /source
COPY Directory.Build.props Directory.Packages.props LlmProxy.sln ./
COPY src/LlmProxy/LlmProxy.csproj src/LlmProxy/
COPY src/LlmProxy.Simulator/LlmProxy.Simulator.csproj src/LlmProxy.Simulator/
RUN dotnet restore src/LlmProxy/LlmProxy.csproj
COPY src/ src/
RUN dotnet publish src/LlmProxy/LlmProxy.csproj -c Release -o /app --no-restore

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
WORKDIR /app
COPY --from=build /app ./
COPY config/production-defaults.json ./appsettings.json
COPY config/ ./config/
# The image's built-in non-root user (uid 1654); the data directory holds the SQLite usage ledger.
RUN mkdir -p /app/data && chown -R app:app /app/data
USER app
# The listening addresses come from appsettings.json, so an operator's configuration can change them: 8080 serves the
# client API and /healthz; 9090, the management port (LlmProxy:Management:Port), serves /metrics, /readyz and /admin/*
# and is meant for the cluster only (publish 8080 alone: docker run -p 8080:8080). The base image's
# ASPNETCORE_HTTP_PORTS is cleared so that ASP.NET Core does not warn that Urls overrides it.
ENV ASPNETCORE_ENVIRONMENT=Production \
    ASPNETCORE_HTTP_PORTS= \
    DOTNET_gcServer=1
EXPOSE 8080 9090
ENTRYPOINT ["dotnet", "LlmProxy.dll"]
