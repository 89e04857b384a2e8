/**
 * `npm run db:generate -- --name <change>`: drizzle-kit writes the next migration from
 * src/db/schema.ts, then the CREATE TABLE statements of the tables in WITHOUT_ROWID_TABLES
 * get WITHOUT ROWID, which drizzle cannot declare. Safe to run twice.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { WITHOUT_ROWID_TABLES } from "../src/db/schema.ts";
import { ROOT } from "./local-env.ts";

const generate = spawnSync(
  join(ROOT, "node_modules/.bin/drizzle-kit"),
  ["generate", ...process.argv.slice(2)],
  { cwd: ROOT, stdio: "inherit" },
);
if (generate.status !== 0) process.exit(generate.status ?? 1);

const dir = join(ROOT, "migrations");
for (const file of readdirSync(dir).filter((name) => name.endsWith(".sql"))) {
  const path = join(dir, file);
  const before = readFileSync(path, "utf8");
  let after = before;
  for (const table of WITHOUT_ROWID_TABLES) {
    // A rebuild creates `__new_<table>` first; both forms need it.
    const create = new RegExp(`(CREATE TABLE \`(?:__new_)?${table}\` \\([\\s\\S]*?\\n\\))(;)`, "g");
    after = after.replace(create, (_, statement: string, end: string) =>
      statement.endsWith("WITHOUT ROWID")
        ? `${statement}${end}`
        : `${statement} WITHOUT ROWID${end}`,
    );
  }
  if (after !== before) {
    writeFileSync(path, after);
    console.log(`without-rowid: ${file} updated`);
  }
}
