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
