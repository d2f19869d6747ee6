# ngx-rtmp-rs: Debian's nginx with the module, configured from the environment
# (docker/entrypoint.sh lists the variables; the README has them in a table).
#
# Built from Debian packages and crates.io only (Rust is Debian's own cargo-web/rustc-web),
# with the same scripts/setup.sh steps as the README's set-up. Without a registry,
# scripts/docker-base.sh makes the debian:bookworm and debian:bookworm-slim images this
# needs with debootstrap.

# --- build ------------------------------------------------------------------------------------
FROM debian:bookworm AS build
# (So that a test can remove this stage once the image is built.)
LABEL ngx-rtmp-rs.stage=build
WORKDIR /src
# Build packages and Rust first: a layer that changes only with the script (and the
# rust-version it reads from Cargo.toml).
COPY Cargo.toml ./
COPY scripts/setup.sh scripts/
RUN ./scripts/setup.sh build-deps && rm -rf /var/lib/apt/lists/*
# Then the crates (a layer that changes only with Cargo.lock)...
COPY Cargo.lock build.rs ./
COPY .cargo/ .cargo/
RUN mkdir -p src && touch src/lib.rs && cargo fetch --locked && rm -r src
# ... then the module: nginx's build tree, hls.js, cargo build --release --locked. The
# image's module has no debug information (47 MB with it, a few MB without).
COPY src/ src/
COPY nginx-conf/ nginx-conf/
ENV CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=debuginfo
RUN ./scripts/setup.sh build

# --- runtime: run-time packages only ----------------------------------------------------------
FROM debian:bookworm-slim
# nginx (the same Debian version the module was built and checked against), ffmpeg (and
# the libavcodec the module's WHIP transcoder links), tini for PID 1, curl for the health
# check.
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
    && ln -sf /dev/stderr /var/log/nginx/error.log \
    && ln -sf /dev/stdout /var/log/nginx/access.log
# The master binds the ports and prepares the volumes; the workers run as www-data.
# 8889/udp: WHIP media (WebRTC), one port for every session.
EXPOSE 1935 8888 8889 8889/udp
# docker stop: a graceful quit. Live publishers get `drain_timeout` (DRAIN_TIMEOUT, 5 s by
# default) to finish, then are closed cleanly: recordings completed (on_record_done),
# players told the stream ended; nginx exits 0 within Docker's grace period (10 s; the
# compose files set stop_grace_period to match).
STOPSIGNAL SIGQUIT
# (Served on loopback by the rendered configuration and by nginx-production.conf alike.)
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD curl -fsS http://127.0.0.1:8888/healthz || exit 1
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/ngx-rtmp-entrypoint"]
