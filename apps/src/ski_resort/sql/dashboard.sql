-- Dashboard for the ski_resort example: dynamic tables that keep the quickstart's reports up
-- to date as rows stream in. Run after setup.sql, as the STREAMING_INGEST role.
--
-- `cargo run --example ski_resort` prints the same reports at the end of a run, computed with
-- SQLite translations of these queries (apps/src/ski_resort/report.rs) over the emulator's
-- tables. Against a real account, query the dynamic tables below (or point a Streamlit app
-- at them).

USE ROLE STREAMING_INGEST;
USE WAREHOUSE STREAMING_INGEST;
USE DATABASE STREAMING_INGEST;
USE SCHEMA STREAMING_INGEST;

-- Ticket revenue by resort and day.
CREATE OR REPLACE DYNAMIC TABLE DAILY_RESORT_REVENUE
    TARGET_LAG = '1 minute'
    WAREHOUSE = STREAMING_INGEST
AS
SELECT
    TO_DATE(PURCHASE_TIME)     AS DAY,
    RESORT,
    COUNT(*)                   AS TICKETS,
    SUM(DAYS)                  AS SKI_DAYS,
    SUM(PRICE_USD)             AS REVENUE_USD,
    ROUND(AVG(PRICE_USD), 2)   AS AVG_PRICE_USD
FROM RESORT_TICKET
GROUP BY 1, 2;

-- Lift rides by resort and hour of the day.
CREATE OR REPLACE DYNAMIC TABLE HOURLY_LIFT_RIDES
    TARGET_LAG = '1 minute'
    WAREHOUSE = STREAMING_INGEST
AS
SELECT
    DATE_TRUNC('HOUR', RIDE_TIME)  AS HOUR,
    RESORT,
    COUNT(*)                       AS RIDES,
    COUNT(DISTINCT RFID)           AS RIDERS
FROM LIFT_RIDE
GROUP BY 1, 2;

-- Busiest lifts overall.
CREATE OR REPLACE DYNAMIC TABLE LIFT_POPULARITY
    TARGET_LAG = '1 minute'
    WAREHOUSE = STREAMING_INGEST
AS
SELECT
    RESORT,
    LIFT,
    COUNT(*)                                   AS RIDES,
    COUNT(DISTINCT RFID)                       AS RIDERS,
    ROUND(COUNT(*) / COUNT(DISTINCT RFID), 2)  AS RIDES_PER_RIDER
FROM LIFT_RIDE
GROUP BY 1, 2;

-- Season pass vs ticket revenue, per day.
CREATE OR REPLACE DYNAMIC TABLE PASS_VS_TICKET_REVENUE
    TARGET_LAG = '1 minute'
    WAREHOUSE = STREAMING_INGEST
AS
WITH SALES AS (
    SELECT TO_DATE(PURCHASE_TIME) AS DAY, 'TICKET' AS PRODUCT, PRICE_USD FROM RESORT_TICKET
    UNION ALL
    SELECT TO_DATE(PURCHASE_TIME) AS DAY, 'PASS' AS PRODUCT, PRICE_USD FROM SEASON_PASS
)
SELECT
    DAY,
    COUNT_IF(PRODUCT = 'TICKET')                                   AS TICKETS,
    SUM(IFF(PRODUCT = 'TICKET', PRICE_USD, 0))                     AS TICKET_USD,
    COUNT_IF(PRODUCT = 'PASS')                                     AS PASSES,
    SUM(IFF(PRODUCT = 'PASS', PRICE_USD, 0))                       AS PASS_USD,
    SUM(PRICE_USD)                                                 AS TOTAL_USD,
    ROUND(100 * SUM(IFF(PRODUCT = 'PASS', PRICE_USD, 0)) / NULLIF(SUM(PRICE_USD), 0), 1)
                                                                   AS PASS_SHARE_PCT
FROM SALES
GROUP BY DAY;

-- Ski days and rides by product (season pass holders vs day-ticket holders).
CREATE OR REPLACE DYNAMIC TABLE RIDES_BY_PRODUCT
    TARGET_LAG = '1 minute'
    WAREHOUSE = STREAMING_INGEST
AS
SELECT
    IFF(P.RFID IS NOT NULL, 'Season pass', 'Day ticket')                 AS PRODUCT,
    COUNT(DISTINCT R.RFID)                                               AS RIDERS,
    COUNT(DISTINCT R.RFID, TO_DATE(R.RIDE_TIME))                         AS SKI_DAYS,
    COUNT(*)                                                             AS RIDES,
    ROUND(COUNT(*) / COUNT(DISTINCT R.RFID, TO_DATE(R.RIDE_TIME)), 1)    AS RIDES_PER_DAY
FROM LIFT_RIDE R
LEFT JOIN (SELECT DISTINCT RFID FROM SEASON_PASS) P ON P.RFID = R.RFID
GROUP BY 1;

-- Reconciliation helpers: duplicates must be zero; compare counts with the generator's output.
CREATE OR REPLACE VIEW INGEST_RECONCILIATION AS
SELECT 'RESORT_TICKET' AS TABLE_NAME, COUNT(*) AS ROWS_LANDED, COUNT(DISTINCT TXID) AS DISTINCT_TXIDS,
       COUNT(*) - COUNT(DISTINCT TXID) AS DUPLICATED FROM RESORT_TICKET
UNION ALL
SELECT 'SEASON_PASS', COUNT(*), COUNT(DISTINCT TXID), COUNT(*) - COUNT(DISTINCT TXID) FROM SEASON_PASS
UNION ALL
SELECT 'LIFT_RIDE', COUNT(*), COUNT(DISTINCT TXID), COUNT(*) - COUNT(DISTINCT TXID) FROM LIFT_RIDE;

-- Dashboard queries (what the closing report prints):
--   SELECT * FROM DAILY_RESORT_REVENUE ORDER BY DAY, RESORT;
--   SELECT HOUR(HOUR) AS HOUR_OF_DAY, RESORT, SUM(RIDES) FROM HOURLY_LIFT_RIDES GROUP BY 1, 2 ORDER BY 1, 2;
--   SELECT * FROM LIFT_POPULARITY ORDER BY RIDES DESC LIMIT 10;
--   SELECT * FROM PASS_VS_TICKET_REVENUE ORDER BY DAY;
--   SELECT * FROM RIDES_BY_PRODUCT;
--   SELECT * FROM INGEST_RECONCILIATION;
