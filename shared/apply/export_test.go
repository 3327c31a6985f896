package apply

// DomainWorkers is domainWorkers, for the tests of the bound.
const DomainWorkers = domainWorkers
