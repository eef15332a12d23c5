# Build the single `sync` binary in a Deno image, then copy it into a minimal runtime image.
# (No Docker engine runs on the development machines; this file is exercised by `deno task
# compile`, which runs the same command.)
FROM denoland/deno:2.9.6 AS build
WORKDIR /src
COPY deno.json deno.lock ./
COPY mod.ts ./
COPY src ./src
# The narrowest permissions that work (docs/operations.md, "Permissions"): no write; env only SYNC_*
# (every other variable reads as unset); no program run; sys only the host name.
RUN deno install --frozen && \
    deno compile --frozen --allow-net '--allow-env=SYNC_*' --ignore-env --allow-read \
      --allow-sys=hostname --v8-flags=--max-semi-space-size=8,--heap-growing-percent=20 \
      -o /out/sync src/cli/main.ts

# glibc-based and small; the binary needs nothing else, for either driver.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/sync /usr/local/bin/sync
ENTRYPOINT ["/usr/local/bin/sync"]
CMD ["--help"]
