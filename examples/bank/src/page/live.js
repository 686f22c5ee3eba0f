// The live connection: `GET /events/live` read with `fetch` (a streamed body), because `EventSource` cannot send the
// Authorization header and the token must not go into a URL. It reconnects after a drop, with a growing pause.

/**
 * Follows the server's notices until `signal` aborts; `onNotice` gets each `projected` event's data, `onState` is
 * told `"connecting"`, `"live"` or `"offline"`.
 */
export const follow = (token, signal, { onNotice, onState }) => {
  let pause = 500
  const connect = async () => {
    while (!signal.aborted) {
      onState("connecting")
      try {
        const response = await fetch("/events/live", { headers: { authorization: `Bearer ${token}` }, signal })
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`)
        const reader = response.body.getReader()
        const decoder = new TextDecoder()
        let buffer = ""
        for (;;) {
          const { done, value } = await reader.read()
          if (done) break
          buffer += decoder.decode(value, { stream: true })
          let end = buffer.indexOf("\n\n")
          while (end >= 0) {
            const frame = buffer.slice(0, end)
            buffer = buffer.slice(end + 2)
            end = buffer.indexOf("\n\n")
            const event = /^event: (.*)$/m.exec(frame)?.[1]
            const data = /^data: (.*)$/m.exec(frame)?.[1]
            if (event === "ready") {
              pause = 500
              onState("live")
              // what changed while we were away is unknown: refresh once
              onNotice(null)
            } else if (event === "projected" && data !== undefined) {
              onNotice(JSON.parse(data))
            }
          }
        }
      } catch {
        if (signal.aborted) return
      }
      onState("offline")
      await new Promise((resolve) => setTimeout(resolve, pause))
      pause = Math.min(pause * 2, 10_000)
    }
  }
  connect()
}
