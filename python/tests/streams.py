"""A backend team's services around Mercator's streams, on confluent-kafka (librdkafka):
one produces delivery events into a source topic, another consumes the interventions a
trigger publishes. Checks every expected customer gets exactly one intervention with its
reasons and version, and prints the end-to-end latency, from each event's delivery report
to its intervention's arrival.

    streams.py BROKER SOURCE_TOPIC INTERVENTION_TOPIC CUSTOMER[,CUSTOMER...]
"""

import json
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer


def event(customer):
    # A late-delivery profile of a customer at risk: the whole customer_churn row.
    return {
        "customer_id": customer,
        "event_timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "order_id": f"o-{customer}",
        "days_since_last_order": 90.0, "orders_90d": 1.0, "spend_90d": 30.0,
        "avg_order_value": 30.0, "return_rate": 0.3, "late_deliveries_90d": 6.0,
        "support_tickets_90d": 3.0, "last_nps": 8.0, "discount_share": 0.3,
        "tenure_days": 150.0, "app_sessions_30d": 0.0, "email_open_rate": 0.1,
    }


def main():
    broker, source, interventions, customers = sys.argv[1:5]
    customers = customers.split(",")
    consumer = Consumer({
        "bootstrap.servers": broker,
        "group.id": f"care-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest",
        # A new group's first join waits for the whole rebalance timeout on Tansu.
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "enable.auto.commit": True,
    })
    consumer.subscribe([interventions])
    # Join before producing, so the latencies do not include the group's first join.
    deadline = time.monotonic() + 60
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(0.2)

    producer = Producer({"bootstrap.servers": broker, "acks": "all", "linger.ms": 0,
                         "compression.type": "none"})
    delivered = {}

    def report(err, msg):
        if err is not None:
            sys.exit(f"produce failed: {err}")
        delivered[msg.key().decode()] = time.monotonic()

    for customer in customers:
        producer.produce(source, key=customer, value=json.dumps(event(customer)), on_delivery=report)
        producer.poll(0)
        time.sleep(0.02)
    producer.flush(10)
    assert len(delivered) == len(customers), delivered

    seen = {}
    deadline = time.monotonic() + 60
    while len(seen) < len(customers) and time.monotonic() < deadline:
        msg = consumer.poll(0.1)
        if msg is None or msg.error():
            continue
        body = json.loads(msg.value())
        customer = body["customer_id"]
        assert customer not in seen, f"{customer}: a second intervention"
        assert msg.key().decode() == customer
        assert body["action"] == "apology_voucher", body
        assert body["version"] == "1" and body["model"] == "churn_ab", body
        assert body["reasons"] and body["request_id"], body
        assert body["event"]["order_id"] == f"o-{customer}", body
        seen[customer] = time.monotonic()
    consumer.close()
    missing = sorted(set(customers) - set(seen))
    assert not missing, f"no intervention for {missing}"
    ms = sorted((seen[c] - delivered[c]) * 1000 for c in customers)
    p = lambda q: ms[max(0, min(len(ms) - 1, int(round(q * len(ms) + 0.5)) - 1))]
    print(f"confluent-kafka end to end over {len(ms)} events "
          f"(delivery report → intervention consumed): p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms")


if __name__ == "__main__":
    main()
