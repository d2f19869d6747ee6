# ngx-rtmp-rs: Debian's nginx with the module, configured from the environment
# (docker/entrypoint.sh lists the variables; the README has them in a table).

# --- build: the same script the README's set-up uses ----------------------------------------
FROM debian:bookworm AS build
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src/ src/
COPY scripts/ scripts/
COPY nginx-conf/ nginx-conf/
# Installs nginx-dev, libclang-dev and Rust, fetches hls.js, builds the module against
# Debian's nginx (the one the runtime stage installs).
RUN ./scripts/setup.sh build

# --- runtime ----------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends nginx ffmpeg tini curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && rm -f /etc/nginx/sites-enabled/default
COPY --from=build /src/target/release/libngx_rtmp_rs.so /usr/lib/nginx/modules/libngx_rtmp_rs.so
COPY --from=build /src/nginx-conf/ /usr/share/ngx-rtmp-rs/nginx-conf/
COPY --from=build /src/nginx-conf/www/ /usr/share/ngx-rtmp-rs/www/
COPY docker/entrypoint.sh /usr/local/bin/ngx-rtmp-entrypoint
RUN mkdir -p /etc/ngx-rtmp-rs /var/www/html/hls /recordings \
    && chown www-data /var/www/html/hls /recordings \
    && ln -sf /dev/stderr /var/log/nginx/error.log
# The master binds the ports and prepares the volumes; the workers run as www-data.
# 8889/udp: WHIP media (WebRTC), one port for every session.
EXPOSE 1935 8888 8889 8889/udp
# docker stop: a graceful quit (publishers finish, recordings are completed).
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s CMD curl -fsS http://127.0.0.1:8888/healthz || exit 1
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/ngx-rtmp-entrypoint"]
