"""The use cases (send, verify, deliver) over the ports they need; imports only the domain."""
