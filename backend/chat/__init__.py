"""Chat service: job and support conversations.

Conversation metadata (who talks, about which request/order, read marks) lives in the SQL database
next to the orders, under row-level security; message history lives in MongoDB (or the embedded
nx-27017 server); presence, typing and flood counters live in Redis (or in process).
"""
