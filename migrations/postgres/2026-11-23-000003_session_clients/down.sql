DROP TABLE session_clients;
