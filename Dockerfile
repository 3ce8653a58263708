# Multi-stage build: compile with the full Rust image, run on a minimal image with only the C
# library (SQLite, libpq and OpenSSL are compiled into the binary).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY migrations migrations
COPY config config
RUN cargo build --release --locked -p idp -p mail-worker --bins \
 && install -D target/release/idp /out/idp \
 && install -D target/release/mail-worker /out/mail-worker \
 && install -d -m 0700 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/idp /usr/local/bin/idp
COPY --from=build /out/mail-worker /usr/local/bin/mail-worker
COPY --from=build --chown=nonroot:nonroot /out/data /data
ENV GUICHET_BIND=0.0.0.0:8080 \
    GUICHET_DATA_DIR=/data \
    GUICHET_DATABASE_URL=sqlite:///data/guichet.db \
    GUICHET_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8080
USER nonroot
ENTRYPOINT ["/usr/local/bin/idp"]
CMD ["serve"]
