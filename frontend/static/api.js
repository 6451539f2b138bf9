// Client of Quorum's JSON API: one request function and the grading endpoints. The session
// cookie set at login authenticates every request, so no token is handled here.

/** A failed request: the HTTP status (0 when the server was not reached) and the API's error body. */
export class ApiError extends Error {
  constructor(status, code, message, field = null, allowed = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field;
    this.allowed = allowed;
  }
}

/**
 * Sends one request to the API with the session cookie and returns the parsed JSON body, or
 * null for HTTP 204. Throws an ApiError with the API's error message when the call fails.
 */
export async function request(method, path, body) {
  const init = {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { Accept: 'application/json' },
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }

  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, 'network', `The server could not be reached (${error.message}). Check the connection and try again.`);
  }
  if (response.status === 204) {
    return null;
  }

  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data && data.error ? data.error : {};
    const message = error.message || `The request ${method} ${path} failed with HTTP status ${response.status}.`;
    throw new ApiError(response.status, error.code || 'http', message, error.field ?? null, error.allowed ?? null);
  }
  if (data === null) {
    throw new ApiError(response.status, 'invalid_response', `The server's response to ${method} ${path} is not JSON.`);
  }
  return data;
}

/** Creates the API client of one study. */
export function createApi(slug) {
  const base = `/api/v1/projects/${encodeURIComponent(slug)}`;
  return {
    /** Leases the next item for the caller, or returns null when none is waiting (HTTP 204). */
    next: () => request('GET', `${base}/next`),
    submitGrade: (itemId, grade) => request('POST', `${base}/items/${itemId}/grades`, grade),
    myGrade: (itemId) => request('GET', `${base}/items/${itemId}/my-grade`),
    progress: () => request('GET', `${base}/progress`),
  };
}
