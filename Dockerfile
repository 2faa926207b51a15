# The `intercomm` binary (gateway, workers, CLI) in a small Debian image.
#
#   docker build -t intercomm .
#   docker run --rm intercomm --help
#   docker run --rm -e AMQP_URL=amqp://guest:guest@rabbitmq:5672/%2f intercomm worker echo
#
# compose.yaml runs the whole system from this image; see docs/INTEROP.md.

# ---- build ------------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
# The whole workspace (.dockerignore leaves out target/ and .git): the manifests, every crate's
# sources and workers/migrations, which sqlx embeds at compile time.
COPY . .
RUN cargo build --release --locked --bin intercomm \
 && install -D -m 0755 target/release/intercomm /out/intercomm

# ---- runtime ----------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 intercomm \
 && useradd --system --uid 10001 --gid intercomm --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin intercomm \
 && install -d -o intercomm -g intercomm /app
COPY --from=build /out/intercomm /usr/local/bin/intercomm
# The job definitions (CONTRACT.md §4), read by the gateway; owned by root, so read-only to it.
COPY schemas/ /app/schemas/
WORKDIR /app
# Inside a container the gateway must listen on all interfaces to be reachable through a port.
# /app is writable by the user, so the default SQLite database (sqlite://intercomm.db) works too.
ENV INTERCOMM_SCHEMAS=/app/schemas \
    INTERCOMM_LISTEN=0.0.0.0:8080
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["intercomm"]
CMD ["--help"]
