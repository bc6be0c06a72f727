-- Snowflake setup for the sensor_stream example: role, user, database, schema, the
-- SENSOR_READINGS table and its Snowpipe Streaming pipe. Run it as ACCOUNTADMIN in a worksheet
-- (or with snowsql / snow sql). The embedded emulator reads this same file to declare its
-- catalog; statements it does not model (roles, users, grants) are accepted and ignored.
--
-- Replace the public key below with yours:
--   openssl genrsa 2048 | openssl pkcs8 -topk8 -inform PEM -out rsa_key.p8 -nocrypt
--   openssl rsa -in rsa_key.p8 -pubout -out rsa_key.pub

USE ROLE ACCOUNTADMIN;

CREATE ROLE IF NOT EXISTS STREAMING_INGEST;
CREATE USER IF NOT EXISTS STREAMING_INGEST
  DEFAULT_ROLE = STREAMING_INGEST
  RSA_PUBLIC_KEY = 'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA...REPLACE_ME...';
GRANT ROLE STREAMING_INGEST TO USER STREAMING_INGEST;

CREATE DATABASE IF NOT EXISTS STREAMING_INGEST;
GRANT OWNERSHIP ON DATABASE STREAMING_INGEST TO ROLE STREAMING_INGEST;

USE ROLE STREAMING_INGEST;
USE DATABASE STREAMING_INGEST;
CREATE SCHEMA IF NOT EXISTS SENSORS;
USE SCHEMA SENSORS;

-- One row per sensor reading. SHARD is the subject `sensors.<shard>` the reading was published
-- to; STREAM_SEQ is its JetStream stream sequence, which is also the channel's offset token:
-- (SHARD, STREAM_SEQ) is unique when the pipeline is exactly once.
CREATE OR REPLACE TABLE SENSOR_READINGS (
    SENSOR_ID NUMBER(4,0),
    CURRENT_TEMPERATURE NUMBER(5,0),
    STATUS VARCHAR(8),
    EVENT_TIME TIMESTAMP_NTZ(3),
    SHARD NUMBER(5,0),
    STREAM_SEQ NUMBER(20,0)
);

CREATE OR REPLACE PIPE SENSOR_READINGS_PIPE AS
    COPY INTO SENSOR_READINGS
    FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))
    MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE;

-- Exactly once: both counts are 0.
-- SELECT SHARD, COUNT(*) - COUNT(DISTINCT STREAM_SEQ) AS DUPLICATED, MAX(STREAM_SEQ)
--   FROM SENSOR_READINGS GROUP BY SHARD ORDER BY SHARD;

-- The Kinesis path (`sensor_stream consume --source kinesis`, the `sensor_stream lambda`
-- handler): one row per reading with its shard and sequence number (56 digits: text, not
-- NUMBER(38,0)); (SHARD_ID, SEQUENCE_NUMBER) is unique when the pipeline is exactly once.
-- INGESTED_AT is when the row was ingested (the pipe's METADATA$START_SCAN_TIME): a child
-- shard's rows come after its parents' last.
CREATE OR REPLACE TABLE KINESIS_READINGS (
    SENSOR_ID NUMBER(4,0),
    CURRENT_TEMPERATURE NUMBER(5,0),
    STATUS VARCHAR(8),
    EVENT_TIME TIMESTAMP_NTZ(3),
    SHARD_ID VARCHAR(64),
    SEQUENCE_NUMBER VARCHAR(129),
    PARTITION_KEY VARCHAR(256),
    INGESTED_AT TIMESTAMP_LTZ(3)
);

CREATE OR REPLACE PIPE KINESIS_READINGS_PIPE AS
    COPY INTO KINESIS_READINGS (SENSOR_ID, CURRENT_TEMPERATURE, STATUS, EVENT_TIME, SHARD_ID,
                                SEQUENCE_NUMBER, PARTITION_KEY, INGESTED_AT)
    FROM (SELECT $1:SENSOR_ID, $1:CURRENT_TEMPERATURE, $1:STATUS, $1:EVENT_TIME, $1:SHARD_ID,
                 $1:SEQUENCE_NUMBER, $1:PARTITION_KEY, METADATA$START_SCAN_TIME
          FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')));

-- Records that cannot be readings, the payload held once: PAYLOAD when it is text, else
-- PAYLOAD_BASE64; cut at 1 MiB, with the whole payload's length and SHA-256.
CREATE OR REPLACE TABLE KINESIS_DEAD_LETTERS (
    SHARD_ID VARCHAR(64),
    SEQUENCE_NUMBER VARCHAR(129),
    PARTITION_KEY VARCHAR(256),
    ERROR VARCHAR,
    PAYLOAD VARCHAR,
    PAYLOAD_BASE64 VARCHAR,
    PAYLOAD_BYTES NUMBER(12,0),
    PAYLOAD_SHA256 VARCHAR(64),
    ARRIVAL_TIME TIMESTAMP_NTZ(3)
);

CREATE OR REPLACE PIPE KINESIS_DEAD_LETTERS_PIPE AS
    COPY INTO KINESIS_DEAD_LETTERS
    FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))
    MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE;

-- Exactly once on the Kinesis path: DUPLICATED is 0 for every shard.
-- SELECT SHARD_ID, COUNT(*) - COUNT(DISTINCT SEQUENCE_NUMBER) AS DUPLICATED
--   FROM KINESIS_READINGS GROUP BY SHARD_ID ORDER BY SHARD_ID;
