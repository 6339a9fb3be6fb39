// Thin fetch wrapper: every API call goes through getJSON so failures become one kind of
// error (with the server's {"error": …} message) that a section can show inline.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/** GET a JSON document from the dashboard's own API. */
export async function getJSON(path, { signal } = {}) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: "application/json" }, signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError("The server could not be reached.", 0);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message = body && typeof body.error === "string" ? body.error : `HTTP ${response.status}`;
    throw new ApiError(message, response.status);
  }
  return body;
}

/** Build a query string, skipping empty values. */
export function query(params) {
  const qs = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") qs.set(key, String(value));
  }
  const text = qs.toString();
  return text ? `?${text}` : "";
}

/** One page of a paged route (a collection of one type, the comments, a list's items). */
export function getPage(path, page, limit, params = {}, options) {
  return getJSON(`${path}${query({ ...params, page, limit })}`, options);
}

/** Share one request between sections; after a failure the next call asks again (Retry). */
export function shared(fetcher) {
  let pending = null;
  return () => {
    if (!pending) {
      pending = fetcher();
      pending.catch(() => {
        pending = null;
      });
    }
    return pending;
  };
}
