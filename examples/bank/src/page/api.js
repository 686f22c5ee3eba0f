// The API as the console calls it: JSON in, JSON out, with the signed-in user's bearer token. A refusal becomes an
// `ApiProblem` carrying the server's problem document (RFC 9457: `title`, `detail`, `code`, `field`, `errors`).

/** A problem the server answered with. */
export class ApiProblem extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`)
    this.status = status
    this.problem = problem ?? {}
  }

  /** The request field the problem is about (`amount`, `to`), when the server named one. */
  get field() {
    return typeof this.problem.field === "string" ? this.problem.field : undefined
  }

  /** Every issue as `{ field, message }`, the first one with the problem's detail when there is no list. */
  get issues() {
    const errors = Array.isArray(this.problem.errors) ? this.problem.errors : []
    if (errors.length === 0) return [{ field: this.field, message: this.message }]
    return errors.map((e) => ({ field: Array.isArray(e.path) ? e.path.join(".") : this.field, message: e.message }))
  }
}

/** Makes the calls of one signed-in user; `signal` aborts every call in flight when the user changes. */
export const client = (token, signal) => {
  const request = async (method, path, body) => {
    const headers = { authorization: `Bearer ${token}` }
    const init = { method, headers, signal }
    if (body !== undefined) {
      headers["content-type"] = "application/json"
      init.body = JSON.stringify(body)
    }
    if (method !== "GET") {
      // a command retried after a lost answer must not happen twice
      headers["idempotency-key"] = crypto.randomUUID()
    }
    const response = await fetch(path, init)
    const text = await response.text()
    let parsed = null
    try {
      parsed = text === "" ? null : JSON.parse(text)
    } catch {
      parsed = null
    }
    if (!response.ok) throw new ApiProblem(response.status, parsed)
    return parsed
  }
  return {
    token,
    signal,
    get: (path) => request("GET", path),
    post: (path, body) => request("POST", path, body)
  }
}

/** The demo users (`GET /demo/users`: `[{ name, role, token }]`), which needs no token. */
export const demoUsers = async () => {
  const response = await fetch("/demo/users")
  if (!response.ok) throw new Error(`The demo users are not available (HTTP ${response.status})`)
  const body = await response.json()
  return Array.isArray(body) ? body : (body?.users ?? [])
}

/** `encodeURIComponent` for path segments. */
export const seg = encodeURIComponent
