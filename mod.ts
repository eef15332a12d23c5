/** Public API of sync. */
export * from "./src/core/change.ts";
export * from "./src/core/keys.ts";
export * from "./src/core/json.ts";
export * from "./src/core/source.ts";
export * from "./src/core/filter.ts";
export * from "./src/core/log.ts";
