"""Delivering the outbox: letters as PDF, senders (files, console, SMTP), rounds and the
background sender (rcd_store.outbox keeps the messages and their states)."""
