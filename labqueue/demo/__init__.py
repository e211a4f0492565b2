"""The toy store: a real checkout, synchronous or with its slow steps deferred to jobs.

The pieces, each usable on its own:

- :mod:`.db` and ``schema.sql``: SQLite (WAL) with ``product``, ``order``, ``order_product``
  and ``order_step`` (what became of the email and the two ERP calls).
- :mod:`.checkout`: :class:`~.checkout.Store`, the seven steps of a checkout, each timed.
- :mod:`.fakemail`, :mod:`.fakeerp`: a fake SMTP server and a fake legacy ERP, real loopback
  services with seeded latency and an error rate, that show what they received over HTTP.
- :mod:`.app`: ``create_app(config)``, the Flask app gunicorn serves.
- :mod:`.jobs`: ``SendReceiptEmail``, ``RecordSaleInERP``, ``DecreaseInventoryInERP``.
- :mod:`.stack`: :class:`~.stack.Stack` starts and stops all of it; ``python -m
  labqueue.demo up`` (``make store``) runs it in the foreground.
"""
