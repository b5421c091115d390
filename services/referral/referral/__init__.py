"""referral: routes specialist referrals and queues tasks for referral coordinators."""
