"""Content autopilot: research, write, schedule and publish social posts, on time and once."""
