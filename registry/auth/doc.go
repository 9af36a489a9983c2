// Package auth guards the registry: who may pull, push or delete in which
// repository. Users come from an htpasswd file (bcrypt); a Policy of rules
// grants actions per user and repository pattern, anonymous pull included
// when a rule says so. Two schemes present it to clients:
//
//   - Basic: the client sends its credentials with every request.
//   - Token: Docker's token protocol. The registry serves its own issuer
//     at /token: a client presents its credentials (or none) and the scope
//     it wants there, gets a short-lived ES256-signed JWT holding the
//     granted part of that scope, and sends it as a bearer token. Every
//     replica given the same key file issues and checks the same tokens,
//     so the registry stays stateless.
//
// Middleware wraps the registry's handler: it works out from the request
// alone what access it needs (Required), and answers 401 with the
// scheme's challenge, or 403, with the distribution spec's error body,
// when the requester lacks it.
package auth
