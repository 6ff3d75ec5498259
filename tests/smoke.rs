mod common;
use common::*;

#[tokio::test]
async fn fixtures_aggregate_through_four_simulators() {
    let (ehr, lab, img, bh) = (
        simulate("ehr", Default::default()).await,
        simulate("lab", Default::default()).await,
        simulate("imaging", Default::default()).await,
        simulate("behavioral", Default::default()).await,
    );
    let gw =
        Gateway::start(&fixture_sources(&[("ehr", &ehr), ("lab", &lab), ("imaging", &img), ("behavioral", &bh)])).await;
    let links = gw.index.links();
    assert!(links.len() >= 12);
    let (status, body) = gw.get(&format!("Patient/{}/$everything", links[0].gateway_id)).await;
    assert_eq!(status, 200, "{body}");
}
