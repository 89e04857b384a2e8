import { env } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type WebhookJob, webhookJobSchema } from "../src/jobs/job";
import { MAX_DELIVERY_BYTES } from "../src/webhooks/body";
import { TEST_BINDINGS } from "./support/bindings";
import { callWorker, delivery, signature, textMessage, WEBHOOK_URL } from "./support/deliveries";
import { limitedQueue } from "./support/faults";

/** Enough runs to cover the generators' shapes while the file stays within seconds. */
const RUNS = 150;

type HeaderList = Array<[string, string]>;

/** Posts raw bytes with exactly these headers; a name given twice is appended twice. */
async function post(body: Uint8Array | string, headers: HeaderList, queue: Queue<WebhookJob>) {
  const list = new Headers();
  for (const [name, value] of headers) list.append(name, value);
  return callWorker(new Request(WEBHOOK_URL, { method: "POST", headers: list, body }), {
    JOBS: queue,
  });
}

async function storedEvents(): Promise<number> {
  const row = await env.DB.prepare("SELECT count(*) AS n FROM webhook_events").first<{
    n: number;
  }>();
  return row?.n ?? 0;
}

const encoder = new TextEncoder();
const bytesOf = (body: Uint8Array | string) =>
  typeof body === "string" ? encoder.encode(body) : body;

const hex = (length: number) =>
  fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: length, maxLength: length });

/** Objects shaped almost like a delivery: right and wrong types, missing and extra fields. */
const id = fc.oneof(
  fc.string({ maxLength: 24 }),
  fc.integer(),
  fc.constant(null),
  fc.constantFrom("__proto__", "constructor", "toString", "17841400000000001"),
);
const looseValue = fc.oneof(fc.jsonValue({ maxDepth: 3 }), id);
const messagingItem = fc.record(
  {
    sender: fc.oneof(fc.record({ id }), looseValue),
    recipient: fc.oneof(fc.record({ id }), looseValue),
    timestamp: fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 4 })),
    message: fc.oneof(
      fc.record(
        {
          mid: id,
          text: fc.string({ unit: "grapheme", maxLength: 40 }),
          is_echo: fc.boolean(),
          is_deleted: looseValue,
          attachments: fc.array(looseValue, { maxLength: 2 }),
        },
        { requiredKeys: [] },
      ),
      looseValue,
    ),
    read: fc.record({ mid: id }),
    reaction: fc.record({ mid: id, action: fc.string({ maxLength: 8 }) }),
    postback: fc.record({ mid: id, title: looseValue }, { requiredKeys: [] }),
  },
  { requiredKeys: [] },
);
const entry = fc.record(
  {
    id,
    time: looseValue,
    messaging: fc.oneof(fc.array(messagingItem, { maxLength: 4 }), looseValue),
    changes: fc.oneof(
      fc.array(fc.record({ field: id, value: looseValue }, { requiredKeys: [] }), { maxLength: 3 }),
      looseValue,
    ),
  },
  { requiredKeys: [] },
);
const nearDelivery = fc
  .record(
    {
      object: fc.oneof(fc.constantFrom("instagram", "Instagram", "page", ""), looseValue),
      entry: fc.oneof(fc.array(entry, { maxLength: 4 }), looseValue),
    },
    { requiredKeys: [] },
  )
  .map((value) => JSON.stringify(value));

/** Deliveries Meta could send, with text in any script. */
const realDelivery = fc
  .array(
    fc.record({
      mid: fc.string({ minLength: 1, maxLength: 30 }),
      sender: fc.string({ minLength: 1, maxLength: 20 }),
      text: fc.string({ unit: "grapheme", maxLength: 200 }),
    }),
    { maxLength: 5 },
  )
  .map((items) => JSON.stringify(delivery(items.map((item) => textMessage(item)))));

/** Any body at all: bytes, text in any script, JSON of any shape, or (nearly) a delivery. */
const anyBody = fc.oneof(
  fc.uint8Array({ maxLength: 2_048 }),
  fc.string({ unit: "binary", maxLength: 512 }),
  fc.json({ maxDepth: 6 }),
  fc.anything({ maxDepth: 4 }).map((value) => JSON.stringify(value) ?? ""),
  { arbitrary: nearDelivery, weight: 3 },
  { arbitrary: realDelivery, weight: 2 },
  fc.constant(""),
);

const contentType = fc.option(
  fc.constantFrom(
    "application/json",
    "APPLICATION/JSON; charset=UTF-16",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "",
  ),
  { nil: undefined },
);

/** The header name in any casing: Headers matches names case-insensitively. */
const headerName = fc
  .array(fc.boolean(), { minLength: 19, maxLength: 19 })
  .map((upper) =>
    [..."x-hub-signature-256"].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join(""),
  );

type Forgery = (body: Uint8Array) => Promise<string[]>;

/** Every way a signature header can be wrong, given the body it should sign. */
const forgery: fc.Arbitrary<Forgery> = fc.oneof(
  fc.constant(async () => []),
  fc.string({ maxLength: 80 }).map((value) => async () => [value]),
  hex(64).map((digest) => async () => [`sha256=${digest}`]),
  hex(64).map((digest) => async () => [`sha256=${digest.toUpperCase()}`]),
  fc
    .integer({ min: 0, max: 130 })
    .filter((length) => length !== 64)
    .chain(hex)
    .map((digest) => async () => [`sha256=${digest}`]),
  fc
    .string({
      unit: fc.constantFrom(..."ghijklmnopqrstuvwxyzGHIJ+/=_- "),
      minLength: 64,
      maxLength: 64,
    })
    .map((digest) => async () => [`sha256=${digest}`]),
  fc.constantFrom<Forgery>(
    // The right digest, but not alone or not in the expected form.
    async (body) => {
      const valid = await signature(body);
      return [valid, valid];
    },
    async (body) => [(await signature(body)).replace("sha256=", "SHA256=")],
    async (body) => [(await signature(body)).replace("sha256=", "sha1=")],
    async (body) => [(await signature(body)).replace("sha256=", "sha256= ")],
    async (body) => [(await signature(body)).slice(0, -1)],
    async (body) => [`${await signature(body)}0`],
    async (body) => [`${await signature(body)}, sha256=${"0".repeat(64)}`],
    // A valid digest of something else.
    async (body) => [await signature(body, "another-app-secret")],
    async (body) => [await signature(new Uint8Array([...body, 0x20]))],
  ),
);

describe("POST /webhooks/instagram without a valid signature", () => {
  it("answers 401 to any body and header, and stores and enqueues nothing", async () => {
    const { queue, sent } = limitedQueue();
    const before = await storedEvents();

    await fc.assert(
      fc.asyncProperty(
        anyBody,
        forgery,
        headerName,
        contentType,
        async (body, forge, name, type) => {
          const bytes = bytesOf(body);
          const headers: HeaderList = (await forge(bytes)).map((value) => [name, value]);
          if (type !== undefined) headers.push(["content-type", type]);

          const response = await post(bytes, headers, queue);

          expect(response.status).toBe(401);
          await response.arrayBuffer();
        },
      ),
      { numRuns: RUNS },
    );

    expect(sent).toHaveLength(0);
    expect(await storedEvents()).toBe(before);
  });

  it("answers 413 past 1 MiB whatever the signature, and verifies up to it", async () => {
    const { queue, sent } = limitedQueue();
    const before = await storedEvents();

    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: MAX_DELIVERY_BYTES - 8, max: MAX_DELIVERY_BYTES + 8 }),
        fc.boolean(),
        async (size, signed) => {
          const bytes = new Uint8Array(size).fill(0x7b);
          const headers: HeaderList = signed
            ? [["x-hub-signature-256", await signature(bytes)]]
            : [["x-hub-signature-256", `sha256=${"0".repeat(64)}`]];

          const response = await post(bytes, headers, queue);

          const expected = size > MAX_DELIVERY_BYTES ? 413 : signed ? 400 : 401;
          expect(response.status).toBe(expected);
          await response.arrayBuffer();
        },
      ),
      { numRuns: 24 },
    );

    expect(sent).toHaveLength(0);
    expect(await storedEvents()).toBe(before);
  });

  it("answers 401 to an empty body without a signature and 400 to a signed one", async () => {
    const { queue } = limitedQueue();
    expect((await post("", [], queue)).status).toBe(401);
    const signed = await post("", [["x-hub-signature-256", await signature("")]], queue);
    expect(signed.status).toBe(400);
  });

  it("refuses an unsigned body nested a million levels deep before parsing it", async () => {
    const { queue } = limitedQueue();
    const deep = `${"[".repeat(500_000)}${"]".repeat(500_000)}`;
    const response = await post(deep, [["x-hub-signature-256", `sha256=${"0".repeat(64)}`]], queue);
    expect(response.status).toBe(401);
  });
});

describe("POST /webhooks/instagram with a valid signature", () => {
  it("answers 200 or 400, never a server error, to any signed body", async () => {
    const { queue, sent } = limitedQueue();
    const statuses = new Set<number>();

    await fc.assert(
      fc.asyncProperty(
        anyBody,
        headerName,
        contentType,
        fc.boolean(),
        async (body, name, type, upper) => {
          const bytes = bytesOf(body);
          const valid = await signature(bytes);
          const headers: HeaderList = [
            [name, upper ? `sha256=${valid.slice(7).toUpperCase()}` : valid],
          ];
          if (type !== undefined) headers.push(["content-type", type]);
          const before = await storedEvents();

          const response = await post(bytes, headers, queue);

          expect([200, 400]).toContain(response.status);
          if (response.status === 400) expect(await storedEvents()).toBe(before);
          statuses.add(response.status);
          await response.arrayBuffer();
        },
      ),
      { numRuns: RUNS },
    );

    // The bodies reached both outcomes, and whatever got in is a job the consumer can read.
    expect([...statuses].sort()).toEqual([200, 400]);
    expect(sent.length).toBeGreaterThan(0);
    for (const job of sent) expect(webhookJobSchema.safeParse(job).success).toBe(true);
  });

  it("answers 400 to a signed body nested deeper than any delivery", async () => {
    const { queue, sent } = limitedQueue();
    for (const deep of [
      `${"[".repeat(400_000)}${"]".repeat(400_000)}`,
      `${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}`,
      JSON.stringify({ object: "instagram", entry: [{ id: "1", messaging: [nest(40)] }] }),
    ]) {
      const response = await post(deep, [["x-hub-signature-256", await signature(deep)]], queue);
      expect(response.status).toBe(400);
    }
    expect(sent).toHaveLength(0);
  });

  it("accepts the signature in uppercase hex and under any casing of the header name", async () => {
    const { queue, sent } = limitedQueue();
    const body = JSON.stringify(delivery([textMessage({ mid: "mid-upper-hex" })]));
    const digest = (await signature(body)).slice("sha256=".length);

    const response = await post(
      body,
      [["X-HUB-Signature-256", `sha256=${digest.toUpperCase()}`]],
      queue,
    );

    expect(response.status).toBe(200);
    expect(sent.map((job) => job.eventId)).toEqual(["mid-upper-hex"]);
  });

  it("keeps keys that name the prototype from reaching it or the job", async () => {
    const { queue, sent } = limitedQueue();
    const body =
      '{"object":"instagram","__proto__":{"polluted":1},"entry":[{"id":"1","messaging":[' +
      '{"sender":{"id":"s"},"recipient":{"id":"1"},"__proto__":{"message":{"mid":"mid-proto"}}},' +
      '{"sender":{"id":"s","__proto__":null},"recipient":{"id":"1"},' +
      '"constructor":{"prototype":{"polluted":1}}}' +
      "]}]}";

    const response = await post(body, [["x-hub-signature-256", await signature(body)]], queue);

    expect(response.status).toBe(200);
    expect(sent).toHaveLength(2);
    expect(sent.map((job) => job.eventId)).not.toContain("mid-proto");
    expect(sent.every((job) => job.eventId.startsWith("sha256:"))).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("secrets compared in constant time", () => {
  function handshake(token: string) {
    const url = new URL(WEBHOOK_URL);
    url.searchParams.set("hub.mode", "subscribe");
    url.searchParams.set("hub.verify_token", token);
    url.searchParams.set("hub.challenge", "8008");
    return callWorker(new Request(url));
  }

  it("refuses a verify token that differs only in its last character", async () => {
    const token = TEST_BINDINGS.META_VERIFY_TOKEN;
    const lastChanged = `${token.slice(0, -1)}${token.endsWith("n") ? "m" : "n"}`;

    const refused = await handshake(lastChanged);
    const accepted = await handshake(token);

    expect(refused.status).toBe(403);
    expect(await refused.text()).not.toContain("8008");
    expect(accepted.status).toBe(200);
  });

  it("refuses any verify token but the configured one", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "grapheme", maxLength: 40 }), async (token) => {
        fc.pre(token !== TEST_BINDINGS.META_VERIFY_TOKEN);
        const response = await handshake(token);
        expect(response.status).toBe(403);
        await response.arrayBuffer();
      }),
      { numRuns: 50 },
    );
  });
});

function nest(depth: number): unknown {
  let value: unknown = "bottom";
  for (let i = 0; i < depth; i++) value = { next: value };
  return value;
}
