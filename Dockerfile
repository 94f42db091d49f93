# syntax=docker/dockerfile:1
# Multi-stage build: the SDK image builds and publishes, the ASP.NET runtime image runs as a non-root user.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /source
COPY Directory.Build.props Directory.Build.targets Directory.Packages.props LlmProxy.sln ./
COPY src/LlmProxy/LlmProxy.csproj src/LlmProxy/
COPY src/LlmProxy.Simulator/LlmProxy.Simulator.csproj src/LlmProxy.Simulator/
RUN dotnet restore src/LlmProxy/LlmProxy.csproj
COPY src/ src/
RUN dotnet publish src/LlmProxy/LlmProxy.csproj -c Release -o /app --no-restore

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
WORKDIR /app
COPY --from=build /app ./
COPY appsettings.json ./
COPY config/ ./config/
# The image's built-in non-root user (uid 1654); the data directory holds the SQLite usage ledger.
RUN mkdir -p /app/data && chown -R app:app /app/data
USER app
ENV ASPNETCORE_ENVIRONMENT=Production \
    DOTNET_gcServer=1
EXPOSE 8080
ENTRYPOINT ["dotnet", "LlmProxy.dll", "--urls", "http://0.0.0.0:8080"]
