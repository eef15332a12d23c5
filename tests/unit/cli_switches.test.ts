/**
 * A switch takes a value on the command line as in the environment and the config file
 * (`--slot-failover=false`), which commander alone refuses as an unknown option.
 */
import { Command } from "commander";
import { assertEquals, assertThrows } from "../../testing/assert.ts";
import { switchValues } from "../../src/cli/main.ts";
import { addSettingFlags } from "../../src/cli/help.ts";

function parse(args: string[]): Record<string, unknown> {
  const cmd = addSettingFlags(new Command("t").exitOverride().allowExcessArguments(false));
  cmd.parse(switchValues(args), { from: "user" });
  return cmd.opts();
}

Deno.test("switches: --flag, --flag=true and --flag=false", () => {
  assertEquals(parse(["--slot-failover=false"]).slotFailover, false);
  assertEquals(parse(["--slot-failover=off"]).slotFailover, false);
  assertEquals(parse(["--ha=true"]).ha, true);
  assertEquals(parse(["--ha"]).ha, true);
  // Not given: left to the environment, the config file or the default.
  assertEquals(parse([]).slotFailover, undefined);
  assertEquals(parse([]).ha, undefined);
});

Deno.test("switches: another value is one clear error; other flags pass as given", () => {
  const e = assertThrows(() => switchValues(["--ha=maybe"]));
  assertEquals(e.message, 'invalid value "maybe" for --ha: expected true or false');
  assertEquals(switchValues(["--db-url=x", "--", "--ha=maybe"]), [
    "--db-url=x",
    "--",
    "--ha=maybe",
  ]);
});
