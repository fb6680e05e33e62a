#!/usr/bin/env bash
# Create the platform's topics on a real Kafka cluster with kafka-topics.sh.
# (`cuentas up` and `cuentas db migrate` create them too, with KAFKA_PARTITIONS
# and KAFKA_REPLICATION_FACTOR; this script is for clusters where the platform's
# user may not create topics.)
set -euo pipefail
: "${BOOTSTRAP:?set BOOTSTRAP=host:port}"
PREFIX="${KAFKA_TOPIC_PREFIX:-cc.}"
PARTITIONS="${KAFKA_PARTITIONS:-24}"
RF="${KAFKA_REPLICATION_FACTOR:-3}"
CONFIG="${KAFKA_CLIENT_CONFIG:-client.properties}"
for t in publish.transfers publish.projects publish.registry publish.flags \
         accepted.transfers accepted.projects contributions.by_project acks rejections flags; do
  kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --command-config "$CONFIG" --create --if-not-exists \
    --topic "$PREFIX$t" --partitions "$PARTITIONS" --replication-factor "$RF" \
    --config min.insync.replicas=2 --config retention.ms=1209600000
done
