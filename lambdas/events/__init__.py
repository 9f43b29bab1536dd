"""The events Lambda: real-time events posted over HTTP into the recent-events table and Firehose."""
