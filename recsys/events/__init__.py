"""Real-time events: `POST /events` bodies validated, kept in the recent-events table for serving, and sent
to Firehose, which delivers them to the ingest bucket for the next training run.

The entry point is `recsys.events.service.post_events`. Only the standard library loads with this
package; boto3 loads with the first client made (`EventSinks`), so handlers that import it start fast.
"""
