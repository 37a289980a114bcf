"""Security events to partners (RFC 8417 SETs, pushed by RFC 8935, polled by RFC 8936) and
OpenID Connect Back-Channel Logout: an outbox of signed events per receiver, filled in
the transaction of each directory change (:mod:`idp.events.emit`) and delivered in order
per receiver, retried with backoff (:mod:`idp.events.push`)."""
