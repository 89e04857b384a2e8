import type { Context, MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Env } from "../env";
import { log } from "../log";
import { secretsEqual } from "../secrets";

/** Query parameters a client might put a token in; URLs end up in access logs and history. */
const TOKEN_PARAMS = ["token", "access_token", "admin_token"];

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/**
 * Guards the admin API with the ADMIN_TOKEN secret, sent as `Authorization: Bearer <token>`.
 * The token is read straight from the environment, before the rest of the configuration, so
 * that an unauthenticated caller learns nothing about how the Worker is configured.
 */
export function requireAdmin(): MiddlewareHandler<{ Bindings: Env }> {
  return async function requireAdmin(c, next) {
    // Admin answers can carry message text; no cache along the way may keep them.
    c.header("Cache-Control", "no-store");

    // Blank counts as unset, as in src/config.ts.
    const expected = c.env.ADMIN_TOKEN?.trim();
    if (!expected) {
      throw new HTTPException(503, {
        message: "the admin API is disabled: ADMIN_TOKEN is not set",
      });
    }

    const inQuery = TOKEN_PARAMS.map((name) => c.req.query(name)).find((value) => value);
    if (inQuery !== undefined) {
      if (await secretsEqual(inQuery, expected)) {
        log.warn("admin token sent in a URL", { reason: "rotate ADMIN_TOKEN" });
      }
      refuse(c, "invalid_request", "send the admin token in the Authorization header, not the URL");
    }

    const presented = BEARER.exec(c.req.header("authorization") ?? "")?.[1];
    if (!presented) refuse(c, undefined, "Authorization: Bearer <ADMIN_TOKEN> is required");
    if (!(await secretsEqual(presented, expected))) {
      refuse(c, "invalid_token", "the admin token does not match");
    }
    await next();
  };
}

/** A 401 with the challenge RFC 6750 asks for: https://www.rfc-editor.org/rfc/rfc6750#section-3 */
function refuse(c: Context, error: string | undefined, message: string): never {
  const challenge = error ? `Bearer realm="admin", error="${error}"` : 'Bearer realm="admin"';
  c.header("WWW-Authenticate", challenge);
  throw new HTTPException(401, { message });
}
