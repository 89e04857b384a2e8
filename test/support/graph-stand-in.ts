import { vi } from "vitest";
import { TEST_BINDINGS } from "./bindings";

/** What the stand-in saw of one Send API call. */
export interface GraphCall {
  url: string;
  method: string;
  authorization: string | null;
  body: { recipient: { id: string }; message: { text: string } };
}

/** How the stand-in answers one call: a response, a hang until timeout, or a dropped line. */
export type GraphAnswer = Response | "timeout" | "reset";

export const ALERT_URL = "https://alerts.test/hook";

/**
 * A stand-in for the Graph API, installed over `fetch` for one test. It answers scripted
 * calls in order, then with success; records every call; and fails any request to another
 * host, so no test can reach the network by accident.
 */
export function installGraphStandIn() {
  const calls: GraphCall[] = [];
  const alerts: unknown[] = [];
  const script: GraphAnswer[] = [];
  let sent = 0;

  const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    if (request.url === ALERT_URL) {
      alerts.push(await request.json());
      return new Response("ok");
    }
    if (!request.url.startsWith(TEST_BINDINGS.GRAPH_API_BASE_URL)) {
      throw new TypeError(`unexpected request to ${new URL(request.url).host} in a test`);
    }

    calls.push({
      url: request.url,
      method: request.method,
      authorization: request.headers.get("authorization"),
      body: await request.json(),
    });
    const answer = script.shift();
    if (answer === "reset") throw new TypeError("Network connection lost.");
    if (answer === "timeout") {
      return new Promise<Response>((_, reject) => {
        const signal = request.signal;
        signal.addEventListener("abort", () => reject(signal.reason));
      });
    }
    if (answer) return answer;
    sent += 1;
    return Response.json({ recipient_id: "stand-in", message_id: `graph-mid-${sent}` });
  });

  return {
    calls,
    alerts,
    /** Answers the next calls with these, in order. */
    answer(...answers: GraphAnswer[]) {
      script.push(...answers);
    },
    restore: () => spy.mockRestore(),
  };
}

/** A Graph error response as Meta shapes it. */
export function graphError(
  status: number,
  code: number,
  options: { transient?: boolean; headers?: Record<string, string> } = {},
): Response {
  return Response.json(
    {
      error: {
        message: `(#${code}) stand-in error`,
        type: "OAuthException",
        code,
        ...(options.transient === undefined ? {} : { is_transient: options.transient }),
        fbtrace_id: "AbCdEf",
      },
    },
    { status, headers: options.headers },
  );
}
