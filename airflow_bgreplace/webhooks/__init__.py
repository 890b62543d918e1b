"""Vendor webhooks in Airflow: the receiver (a FastAPI app, mounted in the api-server by a plugin
or served by ``bgreplace-webhooks``) and the store it writes to, which triggers and sensors read.

Nothing is imported here, so that loading the plugin stays cheap: import ``.store``, ``.app``,
``.plugin`` or ``.cli`` directly.
"""
