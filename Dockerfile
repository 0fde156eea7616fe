# syntax=docker/dockerfile:1
# Build: docker build -t inquiryd .
# Run:   docker run -p 8080:8080 -v inquiryd-data:/data inquiryd

FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY config ./config
# Compiled into the binary (include_str!): the demo page and the language catalogues.
COPY examples ./examples
COPY locales ./locales
RUN cargo build --release --locked --bin inquiryd && strip target/release/inquiryd

FROM debian:12.12-slim AS runtime
RUN groupadd --system --gid 10001 inquiryd \
 && useradd --system --uid 10001 --gid inquiryd --home-dir /data --shell /usr/sbin/nologin inquiryd \
 && mkdir -p /data /etc/inquiryd \
 && chown inquiryd:inquiryd /data
COPY --from=build /src/target/release/inquiryd /usr/local/bin/inquiryd
COPY config/default.toml /etc/inquiryd/inquiryd.toml
COPY config/templates /etc/inquiryd/templates
ENV INQUIRYD_CONFIG=/etc/inquiryd/inquiryd.toml \
    INQUIRYD_SERVER__HOST=0.0.0.0 \
    INQUIRYD_DATABASE__URL=sqlite:///data/inquiries.db \
    INQUIRYD_MAIL__FILE_DIR=/data/mail \
    INQUIRYD_STORAGE__FILES_DIR=/data/files \
    INQUIRYD_MAIL__TEMPLATES_DIR=/etc/inquiryd/templates
USER inquiryd:inquiryd
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["inquiryd", "healthcheck"]
ENTRYPOINT ["inquiryd"]
CMD ["serve"]
