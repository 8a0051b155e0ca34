// Session checks for the routes.
export function requireUser(handler) {
  return (req) => {
    if (!req.user) return { status: 401, body: 'TODO: log in first' }; // shown to the visitor
    return handler(req);
  };
}

export function sessionTtlSeconds() {
  /* FIXME: read the TTL from the config instead of hard-coding it */
  return 3600;
}
