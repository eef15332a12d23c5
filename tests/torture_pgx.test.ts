/** The torture stage for the pgx driver (see testing/torture_stage.ts). */
import { tortureTest } from "../testing/torture_stage.ts";

tortureTest("pgx", 6103);
