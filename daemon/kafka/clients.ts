// The node-rdkafka clients the daemon's Kafka classes build, behind one seam: each class
// takes an optional factory and calls only the methods named here, so the unit tests
// (test/kafka/*.unit.test.ts) drive them against an in-process fake, with no broker and no
// JDK. The daemon never passes a factory: the defaults build the real clients.

import Kafka from 'node-rdkafka'

/** What the trade consumer and the topic reader call on a KafkaConsumer. */
export type ConsumerClient = Pick<Kafka.KafkaConsumer,
  'on' | 'removeListener' | 'isConnected' | 'connect' | 'disconnect' | 'setDefaultConsumeTimeout' | 'subscribe' | 'consume' |
  'assign' | 'unassign' | 'assignments' | 'pause' | 'resume' | 'commit' | 'commitSync' |
  'queryWatermarkOffsets' | 'getMetadata'>

/** What the trade producer calls on a Producer. */
export type ProducerClient = Pick<Kafka.Producer,
  'on' | 'removeListener' | 'isConnected' | 'connect' | 'disconnect' | 'setPollInterval' | 'produce' | 'flush'>

export type ConsumerFactory = (global: Kafka.ConsumerGlobalConfig, topic: Kafka.ConsumerTopicConfig) => ConsumerClient
export type ProducerFactory = (global: Kafka.ProducerGlobalConfig, topic: Kafka.ProducerTopicConfig) => ProducerClient

export const realConsumer: ConsumerFactory = (global, topic) => new Kafka.KafkaConsumer(global, topic)
export const realProducer: ProducerFactory = (global, topic) => new Kafka.Producer(global, topic)
