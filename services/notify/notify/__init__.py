"""notify: patient reminders by e-mail and SMS, with quiet hours, opt-out and crisis resources."""
