// The console's client of the HTTP/JSON API: calls and streams with the session's bearer token,
// asking for a token (once, kept for this tab) when the server refuses a call for lack of one.

const TOKEN_KEY = 'hier-serve-token';

// An API error: the gRPC status name and the server's message, which names the bad field.
export class ApiError extends Error {
  constructor(httpStatus, body) {
    super(body.message || `HTTP ${httpStatus}`);
    this.httpStatus = httpStatus;
    this.status = body.status || 'UNKNOWN';
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

function headers(extra = {}) {
  const all = { ...extra };
  if (token()) all.Authorization = `Bearer ${token()}`;
  return all;
}

// Shows the token dialog with the server's reason and resolves once a token is entered.
let pendingToken = null;
function askForToken(reason) {
  if (pendingToken) return pendingToken;
  const dialog = document.getElementById('token-dialog');
  const form = document.getElementById('token-form');
  const input = document.getElementById('token-input');
  document.getElementById('token-reason').textContent = token()
    ? `The server refused the token: ${reason}`
    : `The server answered: ${reason}`;
  input.value = '';
  pendingToken = new Promise((resolve) => {
    form.addEventListener('submit', () => {
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      pendingToken = null;
      resolve();
    }, { once: true });
  });
  dialog.showModal();
  input.focus();
  return pendingToken;
}

async function errorOf(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    body = { message: `HTTP ${response.status} ${response.statusText}` };
  }
  return new ApiError(response.status, body);
}

// fetch() that retries with a new token for as long as the server answers 401.
async function authorizedFetch(url, init) {
  for (;;) {
    const response = await fetch(url, { ...init, headers: headers(init.headers) });
    if (response.status !== 401) return response;
    const error = await errorOf(response);
    await askForToken(error.message);
  }
}

// Calls "<package.Service>/<Method>" with `request` (protobuf's JSON mapping); the response
// message, or an ApiError.
export async function call(method, request = {}) {
  const response = await authorizedFetch(`/v1/${method}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(request),
  });
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

// Calls a server-streaming method and hands each message to `onMessage`; resolves when the stream
// ends. `signal` (an AbortSignal) ends it early.
export async function stream(method, request, onMessage, signal) {
  const response = await authorizedFetch(`/v1/${method}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(request),
    signal,
  });
  if (!response.ok) throw await errorOf(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let end;
    while ((end = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, end).trim();
      buffered = buffered.slice(end + 1);
      if (!line) continue;
      const message = JSON.parse(line);
      // A failure after the first message arrives as a last line {"error": {...}}.
      if (message.error) throw new ApiError(200, message.error);
      onMessage(message);
    }
  }
}

// A URL for an item's stored image (fetched with the token, so <img> can show it), or null when
// the item has none (it was added as a vector). Cached for the page's life.
const imageUrls = new Map();
export function itemImageUrl(id) {
  if (!imageUrls.has(id)) {
    imageUrls.set(id, authorizedFetch(`/v1/items/${id}/image`, {}).then(async (response) => {
      if (!response.ok) return null;
      return URL.createObjectURL(await response.blob());
    }));
  }
  return imageUrls.get(id);
}

// Forgets an item's cached image (after it was deleted or replaced).
export function forgetItemImage(id) {
  imageUrls.delete(id);
}

// The description of an API message (its fields), for building forms.
export async function schema(message) {
  const response = await fetch(`/v1/schema/${message}`);
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

// A file's bytes as base64 (protobuf's JSON mapping of bytes).
export async function base64Of(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}
