"""What the tests share: fakes of the services the app talks to, servers they start, and
small factories for rows. Test modules import from here; nothing here is a test."""
