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
export type GraphAnswer = Response | "timeout" | "reset" | { successAfterMs: number };

export const ALERT_URL = "https://alerts.test/hook";

/**
 * A stand-in for the Graph API, installed over `fetch` for one test. It answers scripted
 * calls in order, then with success; records every call; and fails any request to another
 * host, so no test can reach the network by accident. It also stands in for the operators'
 * alert endpoint at ALERT_URL.
 *
 * The spy is on the test isolate's global `fetch`, which the Worker's queue handler shares
 * when the runtime invokes it, so end-to-end flows are intercepted as well.
 */
export function installGraphStandIn() {
  const calls: GraphCall[] = [];
  const alerts: Array<Record<string, unknown>> = [];
  const script: GraphAnswer[] = [];
  const byRecipient = new Map<string, () => GraphAnswer>();
  let alertStatus = 200;
  let sent = 0;

  const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    if (request.url === ALERT_URL) {
      alerts.push(await request.json());
      return new Response("ok", { status: alertStatus });
    }
    if (!request.url.startsWith(TEST_BINDINGS.GRAPH_API_BASE_URL)) {
      throw new TypeError(`unexpected request to ${new URL(request.url).host} in a test`);
    }

    const call: GraphCall = {
      url: request.url,
      method: request.method,
      authorization: request.headers.get("authorization"),
      body: await request.json(),
    };
    calls.push(call);
    const answer = byRecipient.get(call.body.recipient?.id)?.() ?? script.shift();
    if (answer === "reset") throw new TypeError("Network connection lost.");
    if (answer === "timeout") {
      return new Promise<Response>((_, reject) => {
        const signal = request.signal;
        signal.addEventListener("abort", () => reject(signal.reason));
      });
    }
    if (answer && "successAfterMs" in answer) {
      await new Promise((resolve) => setTimeout(resolve, answer.successAfterMs));
    } else if (answer) {
      return answer;
    }
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
    /** Answers every call to this recipient with a fresh answer from `next`. */
    answerFor(recipientId: string, next: () => GraphAnswer) {
      byRecipient.set(recipientId, next);
    },
    /** Makes the alert endpoint answer with this status from now on. */
    failAlerts(status = 500) {
      alertStatus = status;
    },
    /** The calls that tried to reach this recipient. */
    callsTo(recipientId: string) {
      return calls.filter((call) => call.body.recipient?.id === recipientId);
    },
    restore: () => spy.mockRestore(),
  };
}

export type GraphStandIn = ReturnType<typeof installGraphStandIn>;

/** A Graph error response as Meta shapes it. */
export function graphError(
  status: number,
  code: number,
  options: { transient?: boolean; headers?: Record<string, string>; message?: string } = {},
): Response {
  return Response.json(
    {
      error: {
        message: options.message ?? `(#${code}) stand-in error`,
        type: "OAuthException",
        code,
        ...(options.transient === undefined ? {} : { is_transient: options.transient }),
        fbtrace_id: "AbCdEf",
      },
    },
    { status, headers: options.headers },
  );
}
