/** The torture stage for the mysql driver (see testing/torture_stage.ts). */
import { tortureTest } from "../testing/torture_stage.ts";

tortureTest("mysql", 6102);
