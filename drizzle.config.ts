import { defineConfig } from "drizzle-kit";

// `npm run db:generate -- --name <change>` writes the next numbered migration from the schema.
export default defineConfig({
  dialect: "sqlite",
  driver: "d1-http",
  schema: "./src/db/schema.ts",
  out: "./migrations",
});
