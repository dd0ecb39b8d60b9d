// Real OAuth 2.0 / OpenID Connect authorization server for the stayfresh tests.
//
// It is `oidc-provider` (pinned in package.json) with a test configuration, plus
// a few test-control endpoints mounted in front of the provider's own routes:
//
//   GET  /__stats   counters of token endpoint requests (JSON, see `freshStats`)
//   POST /__reset   zero the counters
//
// oidc-provider is pinned to 8.x because 8.x runs on Node 18, the `nodejs` of
// Debian 12 (`make test` must work there); 9.x supports Node 22 LTS and later
// only and crashes on Node 18 (it calls URL.parse).  8.x runs on newer Node too.
//
// Usage:  node server.mjs [PORT]      (PORT env works too; 0 = pick a free port)
//
// It listens on 127.0.0.1 only and the issuer is http://127.0.0.1:PORT.  Once it
// is ready it prints exactly one JSON line to stdout:
//   {"event":"listening","port":PORT,"issuer":"http://127.0.0.1:PORT"}
// Everything else the process logs goes to stderr.
//
// Environment (all optional):
//   PORT               port to listen on (default 0; argv[2] wins over it)
//   ACCESS_TTL         access token lifetime in seconds (default 60)
//   REFRESH_TTL        refresh token lifetime in seconds (default 14 days)
//   ROTATE             1 = rotate refresh tokens on every use, 0 = never (default 1)
//   REFRESH_DELAY_MS   delay added before each refresh_token grant is processed,
//                      to make concurrent refreshes overlap (default 0)
//   EXIT_ON_STDIN_EOF  1 = exit when stdin closes (used by the Python harness so
//                      the server dies together with the test process)
//
// Clients (see CLIENTS below):
//   stayfresh-confidential / stayfresh-secret   client_secret_basic or _post
//   stayfresh-public                             public (PKCE, device flow)
// Both are `application_type: native`, so the registered loopback redirect URI
// http://127.0.0.1/callback matches that URI with ANY port (RFC 8252 §7.3).

import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

// oidc-provider prints its NOTICEs with console.info (stdout); stdout is reserved
// for the single readiness line, so route all console output to stderr.
console.log = console.error;
console.info = console.error;
process.stdout.on('error', () => {});

const { default: Provider } = await import('oidc-provider');

function envInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number.parseInt(raw, 10);
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function envBool(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  return !['0', 'false', 'no', 'off'].includes(raw.toLowerCase());
}

const PORT = envInt('PORT', 0);
const REQUESTED_PORT = process.argv[2] !== undefined ? Number.parseInt(process.argv[2], 10) : PORT;
const ACCESS_TTL = envInt('ACCESS_TTL', 60);
const REFRESH_TTL = envInt('REFRESH_TTL', 14 * 24 * 60 * 60);
const ROTATE = envBool('ROTATE', true);
const REFRESH_DELAY_MS = envInt('REFRESH_DELAY_MS', 0);
const HOST = '127.0.0.1';

const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const LOOPBACK_REDIRECT = 'http://127.0.0.1/callback';

const CLIENTS = [
  {
    client_id: 'stayfresh-confidential',
    client_secret: 'stayfresh-secret',
    client_name: 'stayfresh confidential test client',
    application_type: 'native',
    // oidc-provider accepts client_secret_post for a client registered with
    // client_secret_basic (and vice versa): both are "client secret" methods.
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token', DEVICE_CODE_GRANT],
    response_types: ['code'],
    redirect_uris: [LOOPBACK_REDIRECT, 'http://localhost/callback'],
  },
  {
    client_id: 'stayfresh-public',
    client_name: 'stayfresh public test client',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token', DEVICE_CODE_GRANT],
    response_types: ['code'],
    redirect_uris: [LOOPBACK_REDIRECT, 'http://localhost/callback'],
  },
];

// ---------------------------------------------------------------- statistics

function freshStats() {
  return {
    // every POST to the token endpoint, whatever its grant type or outcome
    token_requests: 0,
    // refresh_token grant requests that reached the token endpoint ...
    refresh_grants: 0,
    // ... split by outcome (HTTP 200 vs. anything else)
    refresh_success: 0,
    refresh_failure: 0,
    // failing refresh grants by OAuth error code, e.g. {"invalid_grant": 1}
    refresh_errors: {},
    // per grant type: {"authorization_code": {"requests", "success", "failure"}}
    grants: {},
    // refresh_token grants being processed right now / the most seen at once
    refresh_in_flight: 0,
    refresh_max_in_flight: 0,
  };
}

let stats = freshStats();

function json(ctx, status, body) {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = JSON.stringify(body);
}

// ---------------------------------------------------------------- provider

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(REQUESTED_PORT, HOST, resolve);
});
const { port } = server.address();
const issuer = `http://${HOST}:${port}`;

const configuration = {
  clients: CLIENTS,
  findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return { sub, email: `${sub}@example.test`, email_verified: true, name: sub };
      },
    };
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  scopes: ['openid', 'offline_access', 'email', 'profile'],
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },
  },
  ttl: {
    AccessToken: ACCESS_TTL,
    AuthorizationCode: 60,
    DeviceCode: 600,
    IdToken: 3600,
    Interaction: 3600,
    Session: 24 * 60 * 60,
    Grant: Math.max(REFRESH_TTL, 14 * 24 * 60 * 60),
    RefreshToken: REFRESH_TTL,
  },
  // PKCE is required from public clients only (oidc-provider 9's default; 8's
  // default requires it from every client).  stayfresh always sends it.
  pkce: {
    required(_ctx, client) {
      return client.clientAuthMethod === 'none';
    },
  },
  rotateRefreshToken: ROTATE,
  // Issue a refresh token whenever the grant allows it and offline_access was
  // granted (the default policy, spelled out so it cannot change under us).
  issueRefreshToken(_ctx, client, code) {
    return client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access');
  },
  cookies: { keys: ['stayfresh-test-cookie-key'] },
};

const provider = new Provider(issuer, configuration);
const tokenPath = new URL(provider.urlFor('token')).pathname;

provider.on('server_error', (_ctx, err) => {
  console.error('oidc-provider server_error:', err);
});

// Reads the raw token request body so the grant type is known before the
// provider runs.  The buffer is handed on as `req.body`, which oidc-provider
// accepts in place of the (now consumed) stream.
async function readRawBody(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error('token request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

// Test-control endpoints and token-endpoint accounting.  provider.use()
// middleware runs before the provider's router, so the counters see every
// token request, including the ones the provider then rejects.
provider.use(async (ctx, next) => {
  if (ctx.path === '/__stats' && ctx.method === 'GET') {
    json(ctx, 200, {
      ...stats,
      config: { access_ttl: ACCESS_TTL, refresh_ttl: REFRESH_TTL, rotate: ROTATE, refresh_delay_ms: REFRESH_DELAY_MS },
    });
    return;
  }
  if (ctx.path === '/__reset' && ctx.method === 'POST') {
    stats = freshStats();
    json(ctx, 200, stats);
    return;
  }

  if (!(ctx.path === tokenPath && ctx.method === 'POST')) {
    await next();
    return;
  }

  const counted = stats; // a /__reset during this request must not corrupt the new counters
  counted.token_requests += 1;

  let grantType = 'unknown';
  if (ctx.is('application/x-www-form-urlencoded')) {
    const raw = await readRawBody(ctx.req);
    ctx.req.body = raw;
    grantType = new URLSearchParams(raw.toString('utf8')).get('grant_type') ?? 'unknown';
  }
  const perGrant = (counted.grants[grantType] ??= { requests: 0, success: 0, failure: 0 });
  perGrant.requests += 1;

  const isRefresh = grantType === 'refresh_token';
  if (isRefresh) {
    counted.refresh_grants += 1;
    counted.refresh_in_flight += 1;
    counted.refresh_max_in_flight = Math.max(counted.refresh_max_in_flight, counted.refresh_in_flight);
  }

  try {
    if (isRefresh && REFRESH_DELAY_MS > 0) await sleep(REFRESH_DELAY_MS);
    await next();
  } finally {
    const ok = ctx.status === 200;
    perGrant[ok ? 'success' : 'failure'] += 1;
    if (isRefresh) {
      counted.refresh_in_flight -= 1;
      if (ok) {
        counted.refresh_success += 1;
      } else {
        counted.refresh_failure += 1;
        let code = 'unknown';
        try {
          const body = typeof ctx.body === 'string' ? JSON.parse(ctx.body) : ctx.body;
          code = body?.error ?? code;
        } catch { /* non-JSON error body */ }
        counted.refresh_errors[code] = (counted.refresh_errors[code] ?? 0) + 1;
      }
    }
  }
});

server.on('request', provider.callback());

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 500).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
if (envBool('EXIT_ON_STDIN_EOF', false)) {
  process.stdin.on('end', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}

process.stdout.write(`${JSON.stringify({ event: 'listening', port, issuer })}\n`);
