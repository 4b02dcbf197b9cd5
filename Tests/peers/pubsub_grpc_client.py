"""Publishes to a local cloud with Google's official Pub/Sub client (google-cloud-pubsub),
which speaks gRPC to PUBSUB_EMULATOR_HOST, as a team's own API service does.

Reads {"project": P, "events": [JSON object, ...], "batchSize": N} on stdin (the
environment names PUBSUB_EMULATOR_HOST) and writes what each step answered:
  getTopic      the usage-events topic's name
  messageIds    the ids of the events, published through the client's batching (at most
                batchSize messages a Publish call), each with an `origin` attribute
  ordered       the ids of three messages published with one ordering key
  unknownTopic  the exception class and message of GetTopic and of a publish to a topic
                that does not exist
  created       CreateTopic's answer, then the exception class of creating it again
  pages         ListTopics' names, page by page, two a page
"""

import json
import sys

from google.api_core import exceptions
from google.cloud import pubsub_v1

request = json.load(sys.stdin)
project = request["project"]
batching = pubsub_v1.types.BatchSettings(max_messages=request["batchSize"], max_latency=1.0)
client = pubsub_v1.PublisherClient(batch_settings=batching)
ordered_client = pubsub_v1.PublisherClient(
    publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
)
topic = client.topic_path(project, "usage-events")
answer = {"getTopic": client.get_topic(request={"topic": topic}).name}

futures = [client.publish(topic, json.dumps(event).encode(), origin="python-grpc") for event in request["events"]]
answer["messageIds"] = [future.result(timeout=30) for future in futures]

mine = client.topic_path(project, "python-ordered")
answer["created"] = [client.create_topic(request={"name": mine}).name]
try:
    client.create_topic(request={"name": mine})
except exceptions.GoogleAPICallError as error:
    answer["created"].append(type(error).__name__)
ordered = [ordered_client.publish(mine, b"step %d" % step, ordering_key="acct_1") for step in range(3)]
answer["ordered"] = [future.result(timeout=30) for future in ordered]

nowhere = client.topic_path(project, "nowhere")
answer["unknownTopic"] = []
for attempt in (lambda: client.get_topic(request={"topic": nowhere}), lambda: client.publish(nowhere, b"x").result(timeout=30)):
    try:
        attempt()
        answer["unknownTopic"].append("answered")
    except exceptions.GoogleAPICallError as error:
        answer["unknownTopic"].append(type(error).__name__)

pages = client.list_topics(request={"project": f"projects/{project}", "page_size": 2}).pages
answer["pages"] = [[topic.name for topic in page.topics] for page in pages]
json.dump(answer, sys.stdout)
