"""RiskPulse's Streamlit dashboard."""
