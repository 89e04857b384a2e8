import { type Config, loadConfig } from "../config";
import { type Database, database } from "../db/client";
import type { Env } from "../env";
import { importSealKey } from "../seal";

/** What both consumers work with, made from the environment once per batch. */
export interface Consumer {
  db: Database;
  config: Config;
  sealKey: CryptoKey;
}

/** Throws a ConfigError naming the variable when the configuration is broken. */
export async function loadConsumer(env: Env): Promise<Consumer> {
  const config = loadConfig(env);
  return { db: database(env.DB), config, sealKey: await importSealKey(config.DATA_ENCRYPTION_KEY) };
}
