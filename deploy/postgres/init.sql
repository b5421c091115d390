-- One database per service: each owns its data.
CREATE DATABASE intake;
CREATE DATABASE pathway;
CREATE DATABASE referral;
CREATE DATABASE notify;
