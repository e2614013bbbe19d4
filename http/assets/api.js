// The API client: the session's token (sessionStorage only) and JSON calls that turn the API's
// error body into an ApiError carrying its code, message and field.

const TOKEN_KEY = 'cloudroutes.token';

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

let unauthorized = () => {};

// Registers what to do when the stored token is refused (401) during a call.
export function whenUnauthorized(callback) {
  unauthorized = callback;
}

// Calls the API; `override` is a token to try instead of the session's (sign-in).
export async function api(method, path, body, override) {
  const headers = { Accept: 'application/json' };
  const bearer = override ?? token();
  if (bearer) headers.Authorization = 'Bearer ' + bearer;
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, 'network', 'the node did not answer (' + error.message + ')', null);
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const detail = data && data.error ? data.error : {};
    const error = new ApiError(
      response.status,
      detail.code || 'http_' + response.status,
      detail.message || response.statusText || 'request failed',
      detail.field,
    );
    if (response.status === 401 && override === undefined) unauthorized(error);
    throw error;
  }
  return data;
}

// Returns `path?query` with the empty parameters left out.
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(key, String(value));
  }
  const text = query.toString();
  return text ? path + '?' + text : path;
}

// Returns every item of a paged list, up to `max`.
export async function all(path, max = 5000) {
  const items = [];
  let cursor = null;
  do {
    const page = await api('GET', withQuery(path, { limit: 1000, cursor }));
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}
