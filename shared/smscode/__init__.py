"""smscode: SMS verification codes as event-driven functions over Redis, delivered by Ronglian."""
