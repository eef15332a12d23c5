# Build the single `sync` binary in a Deno image, then copy it into a minimal runtime image.
# (No Docker engine runs on the development machines; this file is exercised by `deno task
# compile`, which runs the same command.)
FROM denoland/deno:2.9.6 AS build
WORKDIR /src
COPY deno.json deno.lock ./
COPY mod.ts ./
COPY src ./src
RUN deno install --frozen && \
    deno compile --frozen --allow-net --allow-env --allow-read --allow-write --allow-run --allow-sys \
      -o /out/sync src/cli/main.ts

# glibc-based and small; the binary needs nothing else. Add `mariadb-client` (mysqldump)
# for the mysql driver.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/sync /usr/local/bin/sync
ENTRYPOINT ["/usr/local/bin/sync"]
CMD ["--help"]
